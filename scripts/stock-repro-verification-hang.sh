#!/usr/bin/env bash
# Reproduces, on stock RocksDB (RINGMERGE_MODE=off), the db_stress hang scripts/exclusions.toml
# excludes with --daily_offpeak_time_utc=: after a blackbox-like load (4 db_stress runs killed
# with SIGKILL after 22 s each), db_stress --verification_only=1 never gets past
# StressTest::Open, whose DBImpl::WaitForCompact (called when an open/sync fault injection flag
# is set, here --sync_fault_injection=1) waits for background compactions to end, and they never
# do: during the offpeak window VersionStorageInfo::ComputeFilesMarkedForPeriodicCompaction marks
# every file that expires before the next offpeak start (facebook/rocksdb#12031), i.e. with the
# crash test's periodic_compaction_seconds (1 s to 1000 s, against ~24 h to the next offpeak
# start) every file including each new output, so single-file PeriodicCompaction jobs run back to
# back forever (~2400 a minute here). The flags are those of the crash test run that met it
# (blackbox, final verification killed by db_crashtest.py's verify_timeout after 20 min), minus
# --db/--expected_values_dir/--verification_only, with its --daily_offpeak_time_utc=04:00-08:00
# (it ran at 06:00 UTC) widened to 00:00-23:59 so that it reproduces at any time of day.
#
#   scripts/stock-repro-verification-hang.sh [off|native] [verification limit in s, default 300]
#       [extra db_stress flags, e.g. --daily_offpeak_time_utc= to see the exclusion work]
#
# Prints "verification: killed after N s (hang reproduced)" or "verification: finished ...".
# On 2026-12-03 (2 cores, Debug -O1 db_stress): off: killed after 300 s and 180 s (main thread in
# DBImpl::WaitForCompact <- StressTest::Open, the LOG all PeriodicCompaction; also with
# --periodic_compaction_seconds=100); off with --daily_offpeak_time_utc=: finished in 6 s.
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
mode=${1:-off}
limit=${2:-300}
shift 2 2>/dev/null || shift $#
bin=${DB_STRESS:-$here/target/suites/bin/db_stress}
d=$(mktemp -d /tmp/stock-repro-XXXXXX)
mkdir -p "$d/db" "$d/exp"
FLAGS=(
  --WAL_size_limit_MB=1 --WAL_ttl_seconds=60 --acquire_snapshot_one_in=100 --adaptive_readahead=0
  --adm_policy=3 --advise_random_on_open=1 --allow_fallocate=0 --allow_unprepared_value=1
  --async_io=0 --auto_readahead_size=0 --auto_refresh_iterator_with_snapshot=0
  --avoid_flush_during_recovery=1 --avoid_flush_during_shutdown=1
  --avoid_unnecessary_blocking_io=0 --backup_max_size=104857600 --backup_one_in=100000
  --batch_protection_bytes_per_key=0 --bgerror_resume_retry_interval=1000000 --block_align=0
  --block_protection_bytes_per_key=2 --block_size=16384 --bloom_before_level=0 --bloom_bits=0
  --bottommost_compression_type=lz4 --bottommost_file_compaction_delay=600 --bytes_per_sync=0
  --cache_index_and_filter_blocks=0 --cache_index_and_filter_blocks_with_high_priority=0
  --cache_size=8388608 --cache_type=auto_hyper_clock_cache
  --charge_compression_dictionary_building_buffer=1 --charge_file_metadata=1
  --charge_filter_construction=1 --charge_table_reader=1 --check_multiget_consistency=1
  --check_multiget_entity_consistency=0 --checkpoint_one_in=10000 --checksum_type=kCRC32c
  --clear_column_family_one_in=0 --compact_files_one_in=1000000 --compact_range_one_in=1000000
  --compaction_pri=4 --compaction_readahead_size=1048576 --compaction_style=0
  --compaction_ttl=1000 --compress_format_version=1 --compressed_secondary_cache_ratio=0.0
  --compressed_secondary_cache_size=0 --compression_checksum=1
  --compression_max_dict_buffer_bytes=0 --compression_max_dict_bytes=0
  --compression_parallel_threads=1 --compression_type=lz4 --compression_use_zstd_dict_trainer=1
  --compression_zstd_max_train_bytes=0 --continuous_verification_interval=0
  --daily_offpeak_time_utc=00:00-23:59 --data_block_index_type=0 --db_write_buffer_size=1048576
  --decouple_partitioned_filters=1 --default_temperature=kHot --default_write_temperature=kHot
  --delete_obsolete_files_period_micros=30000000 --delpercent=4 --delrangepercent=1
  --detect_filter_construct_corruption=1 --disable_file_deletions_one_in=1000000
  --disable_manual_compaction_one_in=10000 --disable_wal=0 --dump_malloc_stats=1
  --enable_blob_files=0 --enable_checksum_handoff=1 --enable_compaction_filter=0
  --enable_custom_split_merge=0 --enable_do_not_compress_roles=0 --enable_index_compression=0
  --enable_memtable_insert_with_hint_prefix_extractor=0 --enable_pipelined_write=0
  --enable_remote_compaction=1 --enable_sst_partitioner_factory=1 --enable_thread_tracking=0
  --enable_write_thread_adaptive_yield=1 --error_recovery_with_no_fault_injection=0
  --exclude_wal_from_write_fault_injection=1 --fail_if_options_file_error=1
  --fifo_allow_compaction=0 --file_checksum_impl=xxh64 --file_temperature_age_thresholds=
  --fill_cache=0 --flush_one_in=1000 --format_version=5
  --get_all_column_family_metadata_one_in=1000000 --get_current_wal_file_one_in=0
  --get_live_files_apis_one_in=10000 --get_properties_of_all_tables_one_in=1000000
  --get_property_one_in=100000 --get_sorted_wal_files_one_in=0
  --hard_pending_compaction_bytes_limit=2097152 --high_pri_pool_ratio=0.5
  --index_block_restart_interval=10 --index_shortening=1 --index_type=0
  --ingest_external_file_one_in=0 --initial_auto_readahead_size=524288 --inplace_update_support=0
  --iterpercent=10 --key_len_percent_dist=1,30,69 --key_may_exist_one_in=100000
  --last_level_temperature=kWarm --level_compaction_dynamic_level_bytes=0 --lock_wal_one_in=0
  --log_file_time_to_roll=60 --log_readahead_size=16777216 --long_running_snapshots=1
  --low_pri_pool_ratio=0.5 --lowest_used_cache_tier=2 --manifest_preallocation_size=5120
  --manual_wal_flush_one_in=1000 --mark_for_compaction_one_file_in=0
  --max_auto_readahead_size=16384 --max_background_compactions=20
  --max_bytes_for_level_base=10485760 --max_key=100000 --max_key_len=3 --max_log_file_size=0
  --max_manifest_file_size=1073741824 --max_sequential_skip_in_iterations=1
  --max_total_wal_size=0 --max_write_batch_group_size_bytes=16 --max_write_buffer_number=10
  --max_write_buffer_size_to_maintain=0 --memtable_insert_hint_per_batch=1
  --memtable_max_range_deletions=0 --memtable_prefix_bloom_size_ratio=0.001
  --memtable_protection_bytes_per_key=2 --memtable_whole_key_filtering=1 --memtablerep=skip_list
  --metadata_charge_policy=1 --metadata_read_fault_one_in=0 --metadata_write_fault_one_in=0
  --min_write_buffer_number_to_merge=2 --mmap_read=0 --nooverwritepercent=1
  --num_file_reads_for_auto_readahead=1 --open_files=-1 --open_metadata_read_fault_one_in=0
  --open_metadata_write_fault_one_in=0 --open_read_fault_one_in=0 --open_write_fault_one_in=0
  --optimize_filters_for_hits=0 --optimize_filters_for_memory=1 --optimize_multiget_for_io=0
  --paranoid_file_checks=1 --paranoid_memory_checks=0 --partition_filters=0 --partition_pinning=1
  --pause_background_one_in=1000000 --periodic_compaction_seconds=1 --prefix_size=1
  --prefixpercent=5 --prepopulate_block_cache=0 --preserve_internal_time_seconds=60
  --progress_reports=0 --promote_l0_one_in=0 --read_amp_bytes_per_bit=32 --read_fault_one_in=0
  --readahead_size=0 --readpercent=45 --recycle_log_file_num=0 --reopen=0 --report_bg_io_stats=1
  --reset_stats_one_in=1000000 --sample_for_compression=5 --secondary_cache_fault_one_in=0
  --secondary_cache_uri= --set_options_one_in=1000 --skip_stats_update_on_db_open=1
  --snapshot_hold_ops=100000 --soft_pending_compaction_bytes_limit=68719476736 --sqfc_name=bar
  --sqfc_version=1 --sst_file_manager_bytes_per_sec=0 --sst_file_manager_bytes_per_truncate=0
  --stats_dump_period_sec=10 --stats_history_buffer_size=1048576 --strict_bytes_per_sync=0
  --subcompactions=3 --sync=0 --sync_fault_injection=1 --table_cache_numshardbits=-1
  --target_file_size_base=2097152 --target_file_size_multiplier=2 --test_batches_snapshots=0
  --test_ingest_standalone_range_deletion_one_in=0 --top_level_index_pinning=1
  --track_and_verify_wals=0 --uncache_aggressiveness=874 --universal_max_read_amp=-1
  --unpartitioned_pinning=1 --use_adaptive_mutex=1 --use_adaptive_mutex_lru=0
  --use_attribute_group=1 --use_delta_encoding=0 --use_direct_io_for_flush_and_compaction=0
  --use_direct_reads=1 --use_full_merge_v1=0 --use_get_entity=0 --use_merge=1
  --use_multi_cf_iterator=1 --use_multi_get_entity=0 --use_multiget=1 --use_put_entity_one_in=0
  --use_sqfc_for_range_queries=1 --use_timed_put_one_in=10 --use_write_buffer_manager=0
  --user_timestamp_size=0 --value_size_mult=32 --verify_checksum=1 --verify_checksum_one_in=1000
  --verify_compression=0 --verify_db_one_in=10000 --verify_file_checksums_one_in=1000000
  --verify_iterator_with_expected_state_one_in=5 --verify_sst_unique_id_in_manifest=1
  --wal_bytes_per_sync=0 --wal_compression=zstd --write_buffer_size=4194304
  --write_dbid_to_manifest=1 --write_fault_one_in=128 --write_identity_file=0 --writepercent=35
  --compressed_secondary_cache_ratio=0
 "$@")
export RINGMERGE_MODE=$mode RINGMERGE_WRAPPED_FS=verify
for i in 1 2 3 4; do
  timeout -s KILL 22 "$bin" "${FLAGS[@]}" --db="$d/db" --expected_values_dir="$d/exp" \
    --ops_per_thread=100000000 --destroy_db_initially=0 >"$d/load$i.log" 2>&1
  sleep 1
done
start=$(date +%s)
timeout -s KILL "$limit" "$bin" "${FLAGS[@]}" --db="$d/db" --expected_values_dir="$d/exp" \
  --ops_per_thread=100000000 --destroy_db_initially=0 --verification_only=1 \
  --skip_verifydb=0 >"$d/verify.log" 2>&1
rc=$?
took=$(($(date +%s) - start))
if [ "$rc" = 137 ]; then
  echo "verification: killed after ${took} s (hang reproduced; RINGMERGE_MODE=$mode; DB in $d)"
else
  echo "verification: finished with exit $rc after ${took} s (RINGMERGE_MODE=$mode)"
  rm -rf "$d"
fi
