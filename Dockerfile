# taskstore in a container: `docker compose up` serves on 127.0.0.1:6379.
FROM python:3.12-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir ".[uvloop]"
EXPOSE 6379
# Inside a container the server must listen on every interface; the compose file publishes
# the port on the host's loopback only (as Redis's official image runs with protected mode off).
CMD ["taskstore-server", "--bind", "0.0.0.0", "--port", "6379", "--protected-mode", "no"]
