"""Frontends: input formats → Grammar IR (:mod:`gdecode.ir`)."""

from gdecode.frontends.gbnf import gbnf_to_ir
from gdecode.frontends.lark import lark_to_ir

__all__ = ["gbnf_to_ir", "lark_to_ir"]
