"""Author corpora: the catalogue, download, cleaning and loading.

Light on purpose (standard library only) so the CLI can import it at start-up.
"""

from .catalogue import CATALOGUE
from .errors import UserError
from .load import Corpus, Document, load_corpus

__all__ = ["CATALOGUE", "Corpus", "Document", "UserError", "load_corpus"]
