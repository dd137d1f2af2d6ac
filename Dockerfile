FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY requirements.lock ./
RUN pip install --no-cache-dir --requirement requirements.lock
COPY api ./api
COPY documents ./documents
COPY seed ./seed

RUN useradd --system --uid 10001 cabinet && mkdir -p /app/data && chown cabinet /app/data
USER cabinet
ENV CABINET_HOST=0.0.0.0 CABINET_PORT=8000
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --retries=5 \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/v1/health/ready')"
CMD ["python", "-m", "api"]
