"""``xcube.bayes``: Poisson Bayes factors, thresholds, exact masks and expected
false alarms (alias of :mod:`xcube.transients.bayes`).

``xcube.bayes.log10_bayes_peak(n, mu)``, ``log10_bayes_eclipse(n, mu)``,
``threshold(sigma)``, ``masks(n, mu, sigma)``, ``expected_false_alarms(mu, sigma)``.
"""
from .transients.bayes import *  # noqa: F401,F403
from .transients.bayes import __all__  # noqa: F401
