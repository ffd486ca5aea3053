"""The shared service runtime: one `serve()`, interceptors, settings, clients.

Every service under `services/` is built from these pieces; see
`ARCHITECTURE.md` in the design folder and the README's "Service pattern".
"""
