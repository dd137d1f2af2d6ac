"""The request scenarios, each as Cabinet's request and the baseline's same database call."""

import json
import random
from dataclasses import dataclass
from urllib.parse import urlencode

from bench.dataset import Dataset, item
from bench.loadgen import Load

JSON = {"Content-Type": "application/json"}
LIST_FILTER = {"category": "c3", "year": {"$gte": 1950}}
LIST_SORT = "-year"
INC_BODY = {"inc": {"likes": 1}}
PIPELINE = [
    {"$match": {"year": {"$gte": 2000}}},
    {"$group": {"_id": "$category", "count": {"$sum": 1}, "avg_price": {"$avg": "$price"}}},
    {"$sort": {"_id": 1}},
]


@dataclass(frozen=True)
class Scenario:
    name: str
    cabinet: Load
    baseline: Load


def request_scenarios(data: Dataset) -> list[Scenario]:
    auth = data.reader_headers
    ids = data.item_ids
    listing = urlencode({"filter": json.dumps(LIST_FILTER), "sort": LIST_SORT, "limit": 50})
    new_item = json.dumps(item(0, random.Random(0)))
    inc = json.dumps(INC_BODY)
    pipeline = json.dumps({"pipeline": PIPELINE})
    return [
        Scenario(
            "get by id",
            Load("GET", [f"/v1/collections/items/documents/{i}" for i in ids], auth),
            Load("GET", [f"/c_items/documents/{i}" for i in ids]),
        ),
        Scenario(
            "list 50, filter + sort",
            Load("GET", [f"/v1/collections/items/documents?{listing}"], auth),
            Load("GET", [f"/c_items/documents?{listing}"]),
        ),
        Scenario(
            "create",
            Load("POST", ["/v1/collections/writes/documents"], {**auth, **JSON}, new_item),
            Load("POST", ["/c_writes/documents"], JSON, new_item),
        ),
        Scenario(
            "inc op",
            Load(
                "POST",
                [f"/v1/collections/items/documents/{i}/ops" for i in ids],
                {**auth, **JSON},
                inc,
            ),
            Load("POST", [f"/c_items/documents/{i}/inc" for i in ids], JSON, inc),
        ),
        Scenario(
            "aggregate $group",
            Load("POST", ["/v1/collections/items/aggregate"], {**auth, **JSON}, pipeline),
            Load("POST", ["/c_items/aggregate"], JSON, pipeline),
        ),
    ]
