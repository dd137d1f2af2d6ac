"""The demo data set: collection definitions, and records generated reproducibly from word lists.

Nothing here touches the database; `seed.demo` validates and stores what these functions make.
"""

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any

from bson import ObjectId

DEMO_SEED = 20260131
ID_EPOCH = 1_767_225_600  # 2026-01-01T00:00:00Z
FULL_SIZE = {"authors": 200, "books": 3000, "reviews": 6000}
MINIMUM_SIZE = {"authors": 5, "books": 20, "reviews": 40}

ID_PATTERN = "^[0-9a-f]{24}$"
GENRES = [
    "fantasy", "science-fiction", "mystery", "thriller", "romance", "history", "biography",
    "poetry", "horror", "travel", "philosophy", "cookery", "adventure", "humour", "classics",
]  # fmt: skip

AUTHORS_DEFINITION: dict[str, Any] = {
    "name": "authors",
    "schema": {
        "type": "object",
        "required": ["handle", "name", "country"],
        "properties": {
            "handle": {"type": "string", "pattern": "^[a-z0-9-]{3,64}$"},
            "name": {"type": "string", "minLength": 1, "maxLength": 100},
            "born": {"type": "integer", "minimum": 1700, "maximum": 2010},
            "country": {"type": "string", "maxLength": 60},
            "bio": {"type": "string", "maxLength": 2000},
        },
    },
    "rules": {
        "list": ["public"],
        "read": ["public"],
        "create": ["role:editor"],
        "update": ["role:editor"],
        "delete": ["role:editor"],
    },
    # Books name their author by handle: a string on both sides, so `$lookup` joins them as is.
    "indexes": [
        {"fields": ["handle"], "unique": True},
        {"fields": ["name"]},
        {"fields": ["country"]},
    ],
}

BOOKS_DEFINITION: dict[str, Any] = {
    "name": "books",
    "schema": {
        "type": "object",
        "required": ["title", "author", "isbn", "year"],
        "properties": {
            "title": {"type": "string", "minLength": 1, "maxLength": 200},
            "author": {"type": "string", "pattern": "^[a-z0-9-]{3,64}$"},
            "isbn": {"type": "string", "pattern": "^97[89][0-9]{10}$"},
            "year": {"type": "integer", "minimum": 1500, "maximum": 2100},
            "genres": {
                "type": "array",
                "items": {"type": "string", "enum": GENRES},
                "maxItems": 5,
                "uniqueItems": True,
            },
            "pages": {"type": "integer", "minimum": 1, "maximum": 5000},
            "rating": {"type": "number", "minimum": 0, "maximum": 5},
            "summary": {"type": "string", "maxLength": 2000},
        },
    },
    "rules": {
        "list": ["public"],
        "read": ["public"],
        "create": ["role:editor"],
        "update": ["role:editor"],
        "delete": ["role:editor"],
    },
    "indexes": [
        {"text": ["title", "summary"]},
        {"fields": ["isbn"], "unique": True},
        {"fields": ["author"]},
        {"fields": ["-year", "title"]},
        # No index on `genres`: the embedded database's find() misses array elements through a
        # multikey index (MongoDB does not), so `{"genres": "mystery"}` would find nothing there.
    ],
}

REVIEWS_DEFINITION: dict[str, Any] = {
    "name": "reviews",
    "schema": {
        "type": "object",
        "required": ["book_id", "rating"],
        "properties": {
            "book_id": {"type": "string", "pattern": ID_PATTERN},
            "rating": {"type": "integer", "minimum": 1, "maximum": 5},
            "body": {"type": "string", "maxLength": 4000},
        },
    },
    "rules": {
        "list": ["public"],
        "read": ["public"],
        "create": ["authenticated"],
        "update": ["owner"],
        "delete": ["owner"],
    },
    "indexes": [{"fields": ["book_id"]}, {"fields": ["rating"]}],
}

DEFINITIONS = [AUTHORS_DEFINITION, BOOKS_DEFINITION, REVIEWS_DEFINITION]


def _words(text: str) -> list[str]:
    return text.split()


FIRST_NAMES = _words(
    """Ada Alan Amara Astrid Beatrix Bruno Camille Chidi Clara Dmitri Elena Emeka Farah
Felix Freya Gustav Hana Hugo Ines Ivan Jonas Kenji Lena Leon Lucia Malik Marta Mei Nadia Nikolai
Noor Oskar Paloma Pavel Priya Rafael Rosa Sakura Selma Soren Tariq Teodor Una Viktor Wanjiru Yusuf
Zara Zofia"""
)
LAST_NAMES = _words(
    """Abara Achebe Bergman Bianchi Castellanos Dubois Eriksen Farouk Fontaine Garcia
Haddad Hoffmann Ishikawa Jansen Kowalski Lindqvist Marchetti Moreau Nakamura Novak Okafor Oliveira
Petrov Quintero Rahman Rossi Sato Schneider Silva Sorensen Tanaka Torres Ueda Varga Weber Wolff
Yamamoto Zielinski Adeyemi Brennan Costa Delacroix Esposito Grant Holm Ivanova"""
)
COUNTRIES = _words(
    """Argentina Brazil Canada Chile Denmark Egypt France Germany Ghana India Ireland Italy
Japan Kenya Mexico Netherlands Nigeria Norway Poland Portugal Spain Sweden Turkey Ukraine"""
)
ADJECTIVES = _words(
    """Silent Hidden Burning Forgotten Golden Broken Distant Crimson Quiet Endless Hollow
Secret Bitter Wandering Frozen Last Little Long Northern Painted Restless Scarlet Shining Stolen
Sunken Velvet Wild Winter Emerald Paper"""
)
NOUNS = _words(
    """Lighthouse Garden River Empire Orchard Harbor Mirror Clockmaker Cartographer Winter
Kingdom Forest Library Island Lantern Voyage Archive Mountain Violin Compass Atlas Tide Citadel
Meadow Observatory Ember Comet Labyrinth Alchemist Fox Raven Sparrow Market Bridge"""
)
PLACES = _words(
    """Venice Kyoto Lisbon Marrakesh Prague Havana Oslo Cairo Lagos Lima Istanbul Dublin
Bombay Tangier Valparaiso Krakow"""
)
TITLE_PATTERNS = [
    "The {adj} {noun}",
    "{noun} of {place}",
    "The {noun} in {place}",
    "The {noun} and the {noun2}",
    "{adj} {noun}s",
    "The Last {noun} of {place}",
    "Letters from the {adj} {noun}",
    "The {noun}'s Daughter",
]
SUMMARY_SUBJECTS = """a young cartographer|an old lighthouse keeper|two estranged sisters|a retired
detective|a travelling violinist|a disgraced alchemist|the last heir of an empire|a curious
child|a ship's cook|an exiled poet|a botanist|a clockmaker's apprentice""".replace("\n", " ")
SUMMARY_VERBS = """searches for|runs from|uncovers|inherits|tries to rebuild|falls in love
with|betrays|maps|guards|steals|remembers""".replace("\n", " ")
SUMMARY_OBJECTS = """a forgotten garden|a stolen atlas|a burning library|a secret archive|a hidden
harbor|the frozen river|a painted mirror|an endless labyrinth|a sunken citadel|a golden
compass""".replace("\n", " ")
SUMMARY_ENDINGS = """before the winter comes|while the empire falls|in a city of bridges|during the
great flood|as an old war returns|on the eve of a revolution|with nothing but a lantern|under a
shining comet""".replace("\n", " ")
OPINIONS = {
    1: ["Could not finish it.", "Dull and far too long.", "Not for me at all."],
    2: ["Slow going, with a few good pages.", "The ending let me down.", "Forgettable."],
    3: ["A decent read.", "Good ideas, uneven pacing.", "Enjoyable enough on a train."],
    4: ["Really enjoyed it.", "Lovely prose and a clever plot.", "Would recommend."],
    5: ["A masterpiece.", "Could not put it down.", "One of the best books I have read."],
}
DETAILS = """The characters felt real.|The setting is vivid.|The dialogue sparkles.|The middle
drags a little.|The twist surprised me.|The translation is excellent.|I read it in one
sitting.|Great for a book club.""".replace("\n", " ")


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split("|")]


@dataclass
class DemoRecords:
    """The user fields of every demo document, in insertion order, with their `_id`s chosen."""

    authors: list[dict] = field(default_factory=list)
    books: list[dict] = field(default_factory=list)
    # (index of the demo reader who owns it, the review)
    reviews: list[tuple[int, dict]] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {
            "authors": len(self.authors),
            "books": len(self.books),
            "reviews": len(self.reviews),
        }


def sizes(scale: float) -> dict[str, int]:
    return {name: max(MINIMUM_SIZE[name], round(FULL_SIZE[name] * scale)) for name in FULL_SIZE}


def _isbn(number: int) -> str:
    digits = f"978{number:09d}"
    check = (10 - sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(digits)) % 10) % 10
    return f"{digits}{check}"


def _title(rng: random.Random) -> str:
    noun, noun2 = rng.sample(NOUNS, 2)
    return rng.choice(TITLE_PATTERNS).format(
        adj=rng.choice(ADJECTIVES), noun=noun, noun2=noun2, place=rng.choice(PLACES)
    )


def _summary(rng: random.Random) -> str:
    subject, verb = rng.choice(_split(SUMMARY_SUBJECTS)), rng.choice(_split(SUMMARY_VERBS))
    thing, ending = rng.choice(_split(SUMMARY_OBJECTS)), rng.choice(_split(SUMMARY_ENDINGS))
    return f"{subject.capitalize()} {verb} {thing} {ending}."


def _object_ids(rng: random.Random, count: int) -> Iterator[ObjectId]:
    # Ids drawn from the generator too, so references (and re-runs) are the same every time; the
    # timestamp part counts up from a fixed moment, so `_id` order is insertion order.
    for second in range(count):
        yield ObjectId((ID_EPOCH + second).to_bytes(4, "big") + rng.randbytes(8))


def generate(scale: float = 1.0, seed: int = DEMO_SEED, readers: int = 5) -> DemoRecords:
    """Authors, their books, and readers' reviews of them; the same for the same arguments."""
    rng = random.Random(seed)  # noqa: S311 - reproducible demo data, not secrets
    size = sizes(scale)
    records = DemoRecords()
    for number, author_id in enumerate(_object_ids(rng, size["authors"]), start=1):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        country = rng.choice(COUNTRIES)
        genre = rng.choice(GENRES).replace("-", " ")
        records.authors.append(
            {
                "_id": author_id,
                "handle": f"{first}-{last}-{number}".lower(),
                "name": f"{first} {last}",
                "born": rng.randint(1850, 1995),
                "country": country,
                "bio": f"{first} {last} writes {genre} from {country}.",
            }
        )
    # A few authors write most of the books, as in any real catalogue.
    author_weights = list(accumulate(1 / (rank + 1) ** 0.8 for rank in range(len(records.authors))))
    isbns = rng.sample(range(10**9), size["books"])
    quality: list[float] = []
    for book_id, number in zip(_object_ids(rng, size["books"]), isbns, strict=True):
        author = rng.choices(records.authors, cum_weights=author_weights)[0]
        records.books.append(
            {
                "_id": book_id,
                "title": _title(rng),
                "author": author["handle"],
                "isbn": _isbn(number),
                "year": rng.randint(author["born"] + 20, min(2025, author["born"] + 75)),
                "genres": rng.sample(GENRES, rng.randint(1, 3)),
                "pages": rng.randint(90, 900),
                "summary": _summary(rng),
            }
        )
        quality.append(rng.uniform(1.5, 4.8))
    popularity = list(accumulate(rng.paretovariate(1.5) for _ in records.books))
    ratings: list[list[int]] = [[] for _ in records.books]
    for _ in range(size["reviews"]):
        index = rng.choices(range(len(records.books)), cum_weights=popularity)[0]
        rating = min(5, max(1, round(rng.gauss(quality[index], 0.9))))
        ratings[index].append(rating)
        body = f"{rng.choice(OPINIONS[rating])} {rng.choice(_split(DETAILS))}"
        review = {"book_id": str(records.books[index]["_id"]), "rating": rating, "body": body}
        records.reviews.append((rng.randrange(readers), review))
    for book, given in zip(records.books, ratings, strict=True):
        if given:
            book["rating"] = round(sum(given) / len(given), 2)
    return records
