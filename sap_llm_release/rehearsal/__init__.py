"""Rehearsal-only code, apart from the product: the local stack (nginx, Prometheus, Alertmanager, Redis, blue and
green as processes), its traffic source and process helpers, the throwaway PostgreSQL, and the rehearsal's data
stores. Production releases never import it; the release DAG reaches the local stack only through the local target."""
