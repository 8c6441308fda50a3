"""The operator console at `/console`: server-rendered pages over the operators' API, for the
people at the desk (docs: README, "The operator console").

- sessions.py: sign-in with an operator key, the session cookie and the CSRF tokens;
- pages.py: what each page shows (queues, an order's timeline, the monitor's findings);
- rates.py: the live rate beside an order's indicative one;
- routes.py: the pages and the forms, each decision sent as the operators' API sends it;
- templates/, static/: the HTML, one stylesheet and one small script (no build step)."""
