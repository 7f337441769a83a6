"""The char transformer is measured as the char-LSTM is: the same text and splits, its own loss pass."""

from ..charlstm.evaluate import read, score, splits

__all__ = ["read", "score", "splits"]
