"""The import reference: the same NDJSON rows, parsed first, written with raw `insert_many`.

    python -m bench.raw_insert URL DATABASE COLLECTION FILE OWNER

Run as its own process by the harness. Rows get the system fields Cabinet stores, so the
database does the same work; only the inserts are timed. Prints one JSON line: rows, seconds
and this process's CPU seconds during the inserts.
"""

import json
import sys
import time
from datetime import UTC, datetime

from pymongo import ASCENDING, MongoClient

BATCH_SIZE = 1000


def main() -> int:
    url, database, collection, path, owner = sys.argv[1:6]
    now = datetime.now(UTC)
    with open(path, "rb") as lines:
        rows = [
            {**json.loads(line), "_owner": owner, "_created": now, "_updated": now, "_version": 1}
            for line in lines
            if line.strip()
        ]
    client: MongoClient = MongoClient(url, tz_aware=True)
    try:
        storage = client[database][collection]
        storage.create_index([("_owner", ASCENDING)])
        cpu_before, started = time.process_time(), time.perf_counter()
        for start in range(0, len(rows), BATCH_SIZE):
            storage.insert_many(rows[start : start + BATCH_SIZE])
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_before
    finally:
        client.close()
    print(json.dumps({"rows": len(rows), "seconds": seconds, "cpu_seconds": cpu}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
