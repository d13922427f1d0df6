"""Checks that users can run on their own ops too: numerical gradient checks in float64."""

from deltagrad.testing.gradcheck import GradcheckError, gradcheck, gradgradcheck

__all__ = ["gradcheck", "gradgradcheck", "GradcheckError"]
