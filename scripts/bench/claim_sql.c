// The SQLite ledger's claim, measured alone: the statement the ledger runs (ids as one JSON
// array through json_each, RETURNING the inserted ones) against a prepared INSERT per id
// (`sqlite3_changes` telling which were new), the C limit probe's way (issue 13).
// Same table, pragmas and transactions as the ledger (LedgerSchema.swift, LedgerConnection.swift).
//
//   cc -O2 scripts/bench/claim_sql.c -lsqlite3 -o /tmp/claim_sql
//   /tmp/claim_sql PATH METHOD BATCH [EVENTS]   METHOD: json_each | per_row
// Prints CPU nanoseconds per id (process CPU time: this is one thread). Ids: EVENTS ascending
// ids, 7% of them repeated from the batch before (a duplicate rate like the generator's).
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void check(int rc, sqlite3 *db, const char *what) {
    if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW) {
        fprintf(stderr, "%s: %s\n", what, sqlite3_errmsg(db));
        exit(1);
    }
}

static double cpu_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s PATH json_each|per_row BATCH [EVENTS]\n", argv[0]);
        return 2;
    }
    const char *path = argv[1];
    int perRow = strcmp(argv[2], "per_row") == 0;
    int batch = atoi(argv[3]);
    long events = argc > 4 ? atol(argv[4]) : 1000000;
    sqlite3 *db;
    check(sqlite3_open(path, &db), db, "open");
    check(sqlite3_exec(db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"
                           "CREATE TABLE IF NOT EXISTS outbox_processed (consumer_id INTEGER NOT NULL,"
                           " event_id INTEGER NOT NULL, processed_at INTEGER NOT NULL,"
                           " PRIMARY KEY (consumer_id, event_id)) WITHOUT ROWID;", 0, 0, 0), db, "schema");
    sqlite3_stmt *claim;
    const char *sql = perRow
        ? "INSERT INTO outbox_processed (consumer_id, event_id, processed_at) VALUES (?1, ?3, ?2) ON CONFLICT DO NOTHING"
        : "INSERT INTO outbox_processed (consumer_id, event_id, processed_at) SELECT ?1, value, ?2 FROM json_each(?3)"
          " WHERE true ON CONFLICT DO NOTHING RETURNING event_id";
    check(sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &claim, 0), db, "prepare");
    long long *ids = malloc(sizeof(long long) * batch);
    char *json = malloc((size_t)batch * 21 + 2);
    long next = 1, inserted = 0, claimed = 0;
    double start = cpu_ns();
    while (claimed < events) {
        int n = 0;
        for (; n < batch && claimed < events; n++, claimed++) {
            // About 7 in 100 ids repeat one of the last batch's.
            ids[n] = (claimed % 100 < 7 && next > batch) ? next - batch + (claimed % batch) : next++;
        }
        check(sqlite3_exec(db, "BEGIN IMMEDIATE", 0, 0, 0), db, "begin");
        sqlite3_bind_int64(claim, 1, 1);
        sqlite3_bind_int64(claim, 2, 1764700000);
        if (perRow) {
            for (int k = 0; k < n; k++) {
                sqlite3_bind_int64(claim, 3, ids[k]);
                check(sqlite3_step(claim), db, "insert");
                inserted += sqlite3_changes(db);
                sqlite3_reset(claim);
            }
        } else {
            char *p = json;
            *p++ = '[';
            for (int k = 0; k < n; k++) p += sprintf(p, k ? ",%lld" : "%lld", ids[k]);
            *p++ = ']';
            sqlite3_bind_text(claim, 3, json, (int)(p - json), SQLITE_STATIC);
            int rc;
            while ((rc = sqlite3_step(claim)) == SQLITE_ROW) inserted++;
            check(rc, db, "claim");
            sqlite3_reset(claim);
        }
        check(sqlite3_exec(db, "COMMIT", 0, 0, 0), db, "commit");
    }
    double elapsed = cpu_ns() - start;
    printf("%s batch %d: %.0f ns per id (%ld ids, %ld new)\n", argv[2], batch, elapsed / events, events, inserted);
    sqlite3_finalize(claim);
    sqlite3_close(db);
    return 0;
}
