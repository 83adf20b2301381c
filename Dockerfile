FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
COPY migrations ./migrations
RUN pip install . && useradd --create-home --uid 10001 loyalty
USER loyalty
WORKDIR /home/loyalty
EXPOSE 8000
# Set LOYALTY_DATABASE_URL (postgresql+asyncpg://…) and LOYALTY_ENCRYPTION_KEY; run `loyalty-api migrate` once.
CMD ["loyalty-api", "serve", "--host", "0.0.0.0", "--port", "8000"]
