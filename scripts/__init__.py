"""Development scripts that write committed files, run from the repository root (``python -m scripts.<name>``).

Not shipped (``pyproject.toml`` packages ``api`` and ``stats`` only): they may use ``testkit`` and the data in
``tests/data``, which the service never does.
"""
