"""The operator console at `/console`: server-rendered pages over the operators' API, for the
people at the desk (docs: README, "The operator console").

- sessions.py: sign-in with an operator key, the session cookie and the CSRF tokens;
- pages.py: what each page shows (queues, an order's timeline, the monitor's findings);
- rates.py: the live rate beside an order's indicative one;
- web.py: what every page shares (templates, headers, forms, cookies);
- signing.py: the sign-in and sign-out routes, the `SignedIn` dependency, the CSRF check;
- routes.py: the pages (queues, orders, system) and `install`, which puts the console on the app;
- decisions.py: approve, reject, retry, each confirmed, then sent as the operators' API sends it;
- templates/, static/: the HTML, one stylesheet and one small script (no build step)."""
