"""The Emacs plugin end to end, in whatever Emacs and eglot this machine has (Debian 12: Emacs 28 with elpa-eglot 1.9).

A batch Emacs loads plugins/emacs/ghostwriter.el, connects eglot to the real `assistant lsp`, asks for a
continuation, sees it as ghost text after point, cycles through alternatives with M-] and M-[ (the first press asks
the server for them), accepts the one on show, and the server stores it as an editor sample.
Without Emacs, or without eglot (built in from Emacs 29, the `elpa-eglot` package before), it is skipped.
"""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from assistant.samples.store import Store

from .conftest import ROOT

EMACS = shutil.which("emacs")
PROMPT = "The robot said that"

SCRIPT = """
(package-initialize)  ; Debian's elpa-eglot is a system package
(setq ghostwriter-command '({python} "-m" "assistant" "lsp" "--model" {model}))
(add-to-list 'load-path {plugin})
(require 'ghostwriter)
(find-file {story})
(text-mode)
(insert {prompt})
(apply #'eglot (eglot--guess-contact))
(defun wait-for (what seconds)
  (with-timeout (seconds (message "RESULT: timed out waiting for %s" what) (kill-emacs 1))
    (while (not (funcall what)) (accept-process-output nil 0.2))))
(wait-for #'eglot-current-server 120)
(ghostwriter-mode 1)
(let ((tries 0))  ; jsonrpc gives a request 10 s: the first may time out while the server loads the model
  (wait-for (lambda () (or ghostwriter--overlay
                           (progn (when (zerop (% tries 60)) (ghostwriter-suggest)) (setq tries (1+ tries)) nil)))
            150))
(message "RESULT: ghost text %S" (overlay-get ghostwriter--overlay 'after-string))
(execute-kbd-macro (kbd "M-]"))  ; asks for the alternatives, then shows the second
(wait-for (lambda () (cdr (car ghostwriter--alternatives))) 60)
(message "RESULT: next %S" (overlay-get ghostwriter--overlay 'after-string))
(execute-kbd-macro (kbd "M-[ M-["))  ; back to the first, and round to the last
(message "RESULT: previous %S" (overlay-get ghostwriter--overlay 'after-string))
(message "RESULT: shown %S" (cdr ghostwriter--suggestion))
(ghostwriter-accept)
(message "RESULT: buffer %S" (buffer-string))
(wait-for (lambda () (zerop (hash-table-count (jsonrpc--request-continuations (eglot-current-server))))) 60)
(condition-case e (eglot-shutdown (eglot-current-server))
  (error (let ((print-length nil) (print-level nil) (print-escape-newlines t)) (message "RESULT: shutdown %S" e))))
(kill-emacs 0)
"""


def _elisp(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@pytest.mark.skipif(EMACS is None, reason="emacs is not installed")
def test_emacs_shows_the_continuation_after_point_and_tab_accepts_it(trained_model: Path, tmp_path: Path):
    eglot = subprocess.run([EMACS, "--batch", "--eval", "(progn (package-initialize) (princ (locate-library \"eglot\")))"],
                           capture_output=True, text=True, timeout=60)
    if eglot.returncode != 0 or not eglot.stdout.strip():
        pytest.skip("this Emacs has no eglot (Emacs 28: install the elpa-eglot package)")
    project = tmp_path / "novel"
    project.mkdir()
    subprocess.run(["git", "init", "-q", str(project)], check=True)  # a project, as eglot wants one
    script = tmp_path / "run.el"
    script.write_text(SCRIPT.format(python=_elisp(sys.executable), model=_elisp(str(trained_model)),
                                    plugin=_elisp(str(ROOT / "plugins" / "emacs")),
                                    story=_elisp(str(project / "story.txt")), prompt=_elisp(PROMPT)))
    result = subprocess.run([EMACS, "--batch", "-l", str(script)], capture_output=True, text=True, timeout=300, cwd=ROOT)
    said = [line.removeprefix("RESULT: ") for line in result.stderr.splitlines() if line.startswith("RESULT: ")]
    assert result.returncode == 0, result.stderr[-3000:]
    ghost, after_next, after_previous, shown, buffer = said[:5]
    assert ghost.startswith('ghost text #("') and len(ghost) > 15  # a propertized string: the suggestion, in its face
    assert not re.search(r'\d+/\d+" ', ghost)  # one suggestion: no "k/n" after it
    n = int(re.search(r' 2/(\d+)" ', after_next)[1])  # what was on show, and the server's 3 alternatives to it
    assert n == 4 and f' {n}/{n}" ' in after_previous
    assert buffer == f"buffer {_elisp(PROMPT)[:-1]}{shown.removeprefix('shown ')[1:]}"  # the one on show, taken
    with Store() as store:
        [sample] = store.find()
    assert sample.source == "editor" and buffer == f"buffer {_elisp(PROMPT + sample.text)}"
