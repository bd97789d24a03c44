"""What tests, benches and the example capture share to run the service against a real PostgreSQL.

A throwaway database (``database``), the service on a free port and the keys to call it (``service``), and
the request bodies of the reference panels (``panels``). A development package: ``pyproject.toml`` ships
only ``api`` and ``stats``; tests, ``bench/`` scripts and ``python -m scripts.capture_examples`` run from the
repository root, which puts it on the path. It never imports ``tests``.
"""
