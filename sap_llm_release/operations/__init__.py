"""Operations as code: SLO rules, runbooks, dashboards and the disaster-recovery drill, generated or checked
from the spec."""
