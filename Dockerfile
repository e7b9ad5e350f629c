# One image for every service; compose picks the command (`outcomes serve ...`).
FROM python:3.11-slim
WORKDIR /app
COPY requirements.lock pyproject.toml README.md ./
RUN pip install --no-cache-dir --require-hashes -r requirements.lock
COPY shared ./shared
COPY services ./services
RUN pip install --no-cache-dir --no-deps . && useradd --system outcomes
USER outcomes
ENV OUTCOMES_DATA_DIR=/tmp/outcomes
