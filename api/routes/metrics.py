"""Prometheus's scrape endpoint: open in development; in production for admins or a token."""

import hmac

from fastapi import APIRouter, Request, Response

from api.deps import SettingsDep, bearer_token, identify
from api.metrics import exposition
from api.problems import Problem, unauthorized
from api.settings import Settings

router = APIRouter(tags=["operations"])


async def _check_scraper(request: Request, settings: Settings) -> None:
    bearer = bearer_token(request)
    token = settings.metrics_token
    if token and bearer and hmac.compare_digest(bearer.encode(), token.encode()):
        return
    principal = await identify(request)  # a scrape is no API request: not counted
    if principal is None:
        raise unauthorized("Metrics need an admin or the metrics token")
    if not principal.is_admin:
        raise Problem(403, "Metrics need an admin or the metrics token")


# Outside the API's OpenAPI document: an operations endpoint in Prometheus's text format.
@router.get("/metrics", response_class=Response, include_in_schema=False)
async def metrics(request: Request, settings: SettingsDep) -> Response:
    """Request counts and latencies in Prometheus's text format."""
    if settings.env == "production":
        await _check_scraper(request, settings)
    # This process's requests answered since its last batch (another worker's wait for theirs).
    request.app.state.access_log.flush()
    body, content_type = exposition()
    return Response(body, media_type=content_type)
