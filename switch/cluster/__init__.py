"""Several `wte serve` nodes sharing PostgreSQL (issue 22).

`notices` is the pure part (the change notices nodes exchange and what each one makes a
node reload); `listener` is the asyncpg adapter (LISTEN/NOTIFY, node liveness);
`node` wires them to the services; `launcher` runs Kamailio and N nodes for a try.
"""
