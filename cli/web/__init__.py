"""The web view (``caseledger serve``, issue 17): pages for chairs, partners and inspectors.

Presentation only, like the CLI: every page is one or a few calls to the read facade
(:mod:`projections.api`) and every form a call to the write facade (:mod:`ledger.api`),
rendered by server-side Jinja2 templates (``templates/``) with one static style sheet and no
script.  Each page answers JSON at the same path when asked with ``Accept:
application/json``: the facade's own ``to_json()``.

Modules: :mod:`cli.web.config` (what the server is told), :mod:`cli.web.identity` (who a
request acts as), :mod:`cli.web.respond` (HTML or JSON, and errors as pages),
:mod:`cli.web.pages` (the read pages), :mod:`cli.web.app` (the Starlette app, with the
security headers), :mod:`cli.web.server` (where it may listen, and uvicorn).  Starlette and
uvicorn are imported only here, never by the CLI's other commands
(``tests/test_startup.py``).
"""
