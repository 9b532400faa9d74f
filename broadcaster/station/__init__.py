"""The station agent: what runs at the commune, beside the loudspeakers.

It imports nothing of the centre (no database, no web server, no config
loader): the standard library, httpx and an mpv binary are all it needs,
so it starts fast on a Raspberry Pi-class machine. `plan` is its pure core;
`cache`, `outbox`, `mpv` and `agent` are the shell around it.
"""
