"""What the routers share: the API's path prefix and the problems its routes may answer."""

from api.problems import problem_responses

V1 = "/v1"
# Any route may answer these; route-specific ones are declared by each route.
COMMON = problem_responses(400, 401, 403, 404, 422, 429, 500)
# Sign-in routes have their own, stricter limits; everything else shares the caller's budget,
# counted when it first asks who is calling (api.deps.caller). Every route with a body may also
# meet the body policy (413, 415).
SIGN_IN = {**COMMON, **problem_responses(413, 415)}
METERED = {**COMMON, **problem_responses(409, 412, 413, 415, 504)}
