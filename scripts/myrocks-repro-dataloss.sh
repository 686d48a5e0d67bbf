#!/bin/bash
# usage: try.sh MODE  -> deterministic load, full compaction, checksums
MODE=$1; D=/tmp/myrocks-rm
mariadb-admin --defaults-file=$D/my.cnf shutdown >/dev/null 2>&1; sleep 1
rm -rf $D/data && mkdir $D/data && mariadb-install-db --defaults-file=$D/my.cnf --auth-root-authentication-method=normal > $D/install.log 2>&1
(env RINGMERGE_MODE=$MODE $EXTRA_ENV mariadbd --defaults-file=$D/my.cnf > $D/out.log 2>&1 &)
for i in $(seq 1 30); do mariadb --defaults-file=$D/my.cnf -e 'select 1' >/dev/null 2>&1 && break; sleep 1; done
q() { mariadb --defaults-file=$D/my.cnf -N -D mysql -e "$1"; }
q "create database t; create table t.a (id int primary key, k int, c char(120), pad char(60), key k(k)) engine=rocksdb"
for b in 0 1 2 3; do q "insert into t.a select seq, (seq*7919) % 100003, md5(seq), left(sha1(seq),60) from seq_$((b*50000+1))_to_$(((b+1)*50000))"; done
q "update t.a set c=md5(id+1) where id % 7 = 0"
q "delete from t.a where id % 11 = 0"
q "SET GLOBAL rocksdb_compact_cf='default'"
sleep 2
echo "$MODE checksum: $(q 'CHECKSUM TABLE t.a' | cut -f2)"
echo "$MODE rows: $(q 'select count(*), sum(k), md5(group_concat(id,c,pad order by id)) from t.a')"
echo "$MODE by k: $(q 'select count(*), md5(group_concat(id order by k, id)) from t.a force index(k) where k between 1000 and 60000')"
echo "$MODE accelerated: $(grep -c 'ringmerge: accelerated' "$D/data/#rocksdb/LOG") fallback: $(grep -c 'ringmerge: fallback' "$D/data/#rocksdb/LOG")"
grep 'ringmerge: fallback' "$D/data/#rocksdb/LOG" | sed 's/.*fallback subcompaction [0-9]*: //' | sort | uniq -c
cp "$D/data/#rocksdb/LOG" /work/runs/myrocks/LOG.$MODE; mariadb-admin --defaults-file=$D/my.cnf shutdown; sleep 2
