"""asyncio glue: connections, the command table, the CLI and the in-process server."""
