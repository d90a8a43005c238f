# Gridline: `gridline serve` on 0.0.0.0:8000 (migrates the database first).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    GRIDLINE_DATABASE_URL=sqlite:////data/gridline.db

WORKDIR /srv/gridline
COPY pyproject.toml README.md ./
COPY app ./app
COPY routing ./routing
COPY sms ./sms
COPY migrations ./migrations
RUN pip install --no-cache-dir . \
    && useradd --system --create-home gridline \
    && mkdir -p /data && chown gridline /data

USER gridline
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz').status != 200)"
CMD ["sh", "-c", "gridline db upgrade && exec gridline serve --host 0.0.0.0 --port 8000"]
