"""Entity tags for documents: the stored `_version`, quoted."""


def etag(version: int) -> str:
    return f'"{version}"'


def etag_matches(header: str, version: int) -> bool:
    """Whether an If-Match / If-None-Match header names this version (weak tags compare equal)."""
    if header.strip() == "*":
        return True
    tags = (tag.strip().removeprefix("W/") for tag in header.split(","))
    return etag(version) in tags
