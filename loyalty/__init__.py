"""The loyalty domain: plain Python and its ports.

Nothing here imports strawberry, httpx or SQLAlchemy. Adapters implement the ports in
`loyalty.ports`; the gateway wires them together.
"""
