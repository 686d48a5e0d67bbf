#!/usr/bin/env bash
# Reproduces, on stock RocksDB (RINGMERGE_MODE=off), the db_stress run scripts/exclusions.toml
# keeps out of whitebox runs with --enable_compaction_filter=0: with the compaction filter on,
# db_stress opens the DB with auto compactions disabled (ShouldDisableAutoCompactionsBeforeVerifyDb)
# and re-enables them only once, before the first run of operations (db_stress_driver.cc);
# StressTest::Reopen opens the DB again with them disabled and never re-enables them. A whitebox
# run reopens 20 times (--reopen=20), so from the first reopen on nothing is compacted: the SST
# files pile up (thousands), every reopen takes longer, and the run stops making progress; the
# whitebox harness kills it 15 min after --duration and counts that as a pass. The flags are
# those of the crash test run that met it (whitebox zstd-dict-partitioned, check_mode=1:
# universal, 1500 ops per thread), minus --db/--expected_values_dir.
#
#   scripts/stock-repro-reopen-without-compaction.sh [off|native] [limit in s, default 300]
#       [extra db_stress flags, e.g. --enable_compaction_filter=0 to see the exclusion work]
#
# On 2026-12-03 (2 cores, Debug -O1 db_stress), off, 300 s: 12 reopens, 0 compactions started
# (LOG: Options.disable_auto_compactions: 1), 4590 SST files, no output for the last 3.5 min;
# native the same (after 9.5 min: 12 reopens, 2480 SST files, no RINGMERGE_OUTCOME_LOG line:
# ringmerge never ran). With --enable_compaction_filter=0: off exit 0 after 38 s (20 reopens,
# 268 compactions, 46 SST files), native exit 0 after 52 s (263 compactions, 292 outcome lines).
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
mode=${1:-off}
limit=${2:-300}
shift 2 2>/dev/null || shift $#
bin=${DB_STRESS:-$here/target/suites/bin/db_stress}
d=$(mktemp -d /tmp/stock-repro-XXXXXX)
mkdir -p "$d/db" "$d/exp"
FLAGS=(
  --WAL_size_limit_MB=1 --WAL_ttl_seconds=0 --acquire_snapshot_one_in=0 --adaptive_readahead=0
  --adm_policy=3 --advise_random_on_open=1 --allow_concurrent_memtable_write=0
  --allow_fallocate=0 --allow_unprepared_value=0 --async_io=0 --auto_readahead_size=0
  --auto_refresh_iterator_with_snapshot=1 --avoid_flush_during_recovery=0
  --avoid_flush_during_shutdown=0 --avoid_unnecessary_blocking_io=0 --backup_max_size=104857600
  --backup_one_in=1000 --batch_protection_bytes_per_key=0 --bgerror_resume_retry_interval=100
  --block_align=0 --block_protection_bytes_per_key=8 --block_size=16384
  --bloom_before_level=2147483647 --bloom_bits=0 --bottommost_compression_type=zstd
  --bottommost_file_compaction_delay=0 --bytes_per_sync=0 --cache_index_and_filter_blocks=1
  --cache_index_and_filter_blocks_with_high_priority=0 --cache_size=8388608
  --cache_type=auto_hyper_clock_cache --charge_compression_dictionary_building_buffer=1
  --charge_file_metadata=0 --charge_filter_construction=0 --charge_table_reader=1
  --check_multiget_consistency=0 --check_multiget_entity_consistency=0 --checkpoint_one_in=10000
  --checksum_type=kCRC32c --clear_column_family_one_in=0 --compact_files_one_in=1000000
  --compact_range_one_in=0 --compaction_pri=2 --compaction_readahead_size=0 --compaction_style=1
  --compaction_ttl=0 --compress_format_version=2 --compressed_secondary_cache_ratio=0.0
  --compressed_secondary_cache_size=0 --compression_checksum=0
  --compression_max_dict_buffer_bytes=0 --compression_max_dict_bytes=16384
  --compression_parallel_threads=1 --compression_type=zstd --compression_use_zstd_dict_trainer=0
  --compression_zstd_max_train_bytes=65536 --continuous_verification_interval=0
  --daily_offpeak_time_utc= --data_block_index_type=1 --db_write_buffer_size=1048576
  --decouple_partitioned_filters=1 --default_temperature=kWarm --default_write_temperature=kCold
  --delete_obsolete_files_period_micros=30000000 --delpercent=5 --delrangepercent=0
  --destroy_db_initially=1 --detect_filter_construct_corruption=0
  --disable_file_deletions_one_in=1000000 --disable_manual_compaction_one_in=1000000
  --disable_wal=0 --dump_malloc_stats=0 --enable_blob_files=0 --enable_checksum_handoff=1
  --enable_compaction_filter=1 --enable_custom_split_merge=0 --enable_do_not_compress_roles=0
  --enable_index_compression=0 --enable_memtable_insert_with_hint_prefix_extractor=0
  --enable_pipelined_write=0 --enable_remote_compaction=0 --enable_sst_partitioner_factory=0
  --enable_thread_tracking=1 --enable_write_thread_adaptive_yield=0
  --error_recovery_with_no_fault_injection=1 --exclude_wal_from_write_fault_injection=1
  --fail_if_options_file_error=1 --fifo_allow_compaction=1 --file_checksum_impl=crc32c
  --file_temperature_age_thresholds= --fill_cache=1 --flush_one_in=1000000 --format_version=6
  --get_all_column_family_metadata_one_in=1000000 --get_current_wal_file_one_in=0
  --get_live_files_apis_one_in=1000000 --get_properties_of_all_tables_one_in=1000000
  --get_property_one_in=1000000 --get_sorted_wal_files_one_in=0
  --hard_pending_compaction_bytes_limit=274877906944 --high_pri_pool_ratio=0
  --index_block_restart_interval=12 --index_shortening=0 --index_type=2
  --ingest_external_file_one_in=0 --initial_auto_readahead_size=524288 --inplace_update_support=1
  --iterpercent=0 --key_len_percent_dist=1,30,69 --key_may_exist_one_in=100000
  --last_level_temperature=kUnknown --level_compaction_dynamic_level_bytes=0 --lock_wal_one_in=0
  --log2_keys_per_lock=10 --log_file_time_to_roll=0 --log_readahead_size=16777216
  --long_running_snapshots=0 --low_pri_pool_ratio=0 --lowest_used_cache_tier=1
  --manifest_preallocation_size=0 --manual_wal_flush_one_in=0 --mark_for_compaction_one_file_in=0
  --max_auto_readahead_size=16384 --max_background_compactions=20
  --max_bytes_for_level_base=10485760 --max_key=100000 --max_key_len=3
  --max_log_file_size=1048576 --max_manifest_file_size=1073741824
  --max_sequential_skip_in_iterations=16 --max_total_wal_size=0
  --max_write_batch_group_size_bytes=16 --max_write_buffer_number=3
  --max_write_buffer_size_to_maintain=4194304 --memtable_insert_hint_per_batch=1
  --memtable_max_range_deletions=0 --memtable_prefix_bloom_size_ratio=0.01
  --memtable_protection_bytes_per_key=2 --memtable_whole_key_filtering=0
  --metadata_charge_policy=1 --metadata_read_fault_one_in=0 --metadata_write_fault_one_in=0
  --min_write_buffer_number_to_merge=2 --mmap_read=1 --nooverwritepercent=1
  --num_file_reads_for_auto_readahead=1 --open_files=100 --open_metadata_read_fault_one_in=8
  --open_metadata_write_fault_one_in=0 --open_read_fault_one_in=0 --open_write_fault_one_in=16
  --ops_per_thread=1500 --optimize_filters_for_hits=1 --optimize_filters_for_memory=0
  --optimize_multiget_for_io=0 --paranoid_file_checks=1 --paranoid_memory_checks=1
  --partition_filters=1 --partition_pinning=0 --pause_background_one_in=1000000
  --periodic_compaction_seconds=0 --prefix_size=1 --prefixpercent=0 --prepopulate_block_cache=1
  --preserve_internal_time_seconds=36000 --progress_reports=0 --promote_l0_one_in=0
  --read_amp_bytes_per_bit=32 --read_fault_one_in=0 --readahead_size=16384 --readpercent=60
  --recycle_log_file_num=0 --reopen=20 --report_bg_io_stats=0 --reset_stats_one_in=10000
  --sample_for_compression=0 --secondary_cache_fault_one_in=0 --secondary_cache_uri=
  --skip_stats_update_on_db_open=0 --snapshot_hold_ops=100000
  --soft_pending_compaction_bytes_limit=68719476736 --sqfc_name=foo --sqfc_version=0
  --sst_file_manager_bytes_per_sec=0 --sst_file_manager_bytes_per_truncate=0
  --stats_dump_period_sec=10 --stats_history_buffer_size=0 --strict_bytes_per_sync=0
  --subcompactions=3 --sync=0 --sync_fault_injection=0 --table_cache_numshardbits=-1
  --target_file_size_base=2097152 --target_file_size_multiplier=2 --test_batches_snapshots=0
  --test_ingest_standalone_range_deletion_one_in=0 --top_level_index_pinning=2
  --track_and_verify_wals=0 --uncache_aggressiveness=38 --universal_max_read_amp=-1
  --unpartitioned_pinning=0 --use_adaptive_mutex=0 --use_adaptive_mutex_lru=0
  --use_attribute_group=1 --use_delta_encoding=0 --use_direct_io_for_flush_and_compaction=0
  --use_direct_reads=0 --use_full_merge_v1=1 --use_get_entity=0 --use_merge=0
  --use_multi_cf_iterator=0 --use_multi_get_entity=0 --use_multiget=0 --use_put_entity_one_in=0
  --use_sqfc_for_range_queries=0 --use_timed_put_one_in=0 --use_write_buffer_manager=1
  --user_timestamp_size=0 --value_size_mult=32 --verification_only=0 --verify_checksum=1
  --verify_checksum_one_in=1000000 --verify_compression=0 --verify_db_one_in=100000
  --verify_file_checksums_one_in=1000000 --verify_iterator_with_expected_state_one_in=5
  --verify_sst_unique_id_in_manifest=1 --wal_bytes_per_sync=0 --wal_compression=none
  --write_buffer_size=4194304 --write_dbid_to_manifest=1 --write_fault_one_in=0
  --write_identity_file=0 --writepercent=35 --compressed_secondary_cache_ratio=0
 "$@")
export RINGMERGE_MODE=$mode RINGMERGE_WRAPPED_FS=verify RINGMERGE_OUTCOME_LOG="$d/outcomes"
start=$(date +%s)
timeout -s KILL "$limit" "$bin" "${FLAGS[@]}" --db="$d/db" --expected_values_dir="$d/exp" \
  >"$d/out.log" 2>&1
rc=$?
took=$(($(date +%s) - start))
reopens=$(grep -c 'Reopening database' "$d/out.log")
compactions=$(cat "$d"/db/LOG* 2>/dev/null | grep -c '"event": "compaction_started"')
echo "RINGMERGE_MODE=$mode: exit $rc after ${took} s; $reopens reopens, $compactions compactions" \
  "started, $(find "$d/db" -name '*.sst' | wc -l) SST files," \
  "$(cat "$d/outcomes" 2>/dev/null | wc -l) outcome lines (DB in $d)"
