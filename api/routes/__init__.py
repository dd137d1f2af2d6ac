"""Every route of the API, under one router mounted at /v1."""

from fastapi import APIRouter

from api.routes import auth, health, users

api_router = APIRouter()
api_router.include_router(health.router)
api_router.include_router(auth.router)
api_router.include_router(users.router)
