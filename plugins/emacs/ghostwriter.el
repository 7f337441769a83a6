;;; ghostwriter.el --- ghostwriter's continuations in Emacs, through eglot  -*- lexical-binding: t; -*-

;; Package-Requires: ((emacs "28.1") (eglot "1.9"))

;;; Commentary:

;; eglot starts `assistant lsp' for text and Markdown buffers.  Eglot has no inline completions
;; before Emacs 31, so `ghostwriter-mode' asks for textDocument/inlineCompletion itself after a
;; pause in typing, shows the first item as an overlay after point, accepts it with TAB and
;; reports shown/accepted to the server.  M-] and M-[ cycle through alternatives: the first press
;; asks the server for them (an invoked request answers up to `alternatives' different ones), and
;; "k/n" follows the one on show.  `ghostwriter-unconditional' inserts an unconditional sample.
;; Without `ghostwriter-mode', eglot's completion-at-point (M-TAB) still offers the continuation.

;;; Code:

(require 'cl-lib)
(require 'eglot)
(require 'seq)

(defgroup ghostwriter nil "Continuations from a ghostwriter model." :group 'editing)

(defcustom ghostwriter-command '("assistant" "lsp")
  "How to start the server." :type '(repeat string))

(defcustom ghostwriter-settings '(:temperature 0.8 :autoChars 60 :stopAt "sentence")
  "Sent as initializationOptions: :model :temperature :topP :autoChars :maxChars :stopAt ..."
  :type 'plist)

(defcustom ghostwriter-idle-delay 0.25
  "Seconds of no typing before a suggestion is asked for." :type 'number)

(defface ghostwriter-suggestion '((t :inherit shadow)) "How a suggestion looks.")

(defface ghostwriter-counter '((t :inherit shadow :slant italic)) "How the \"k/n\" after an alternative looks.")

(defclass ghostwriter-server (eglot-lsp-server) ()
  :documentation "The ghostwriter language server.")

(cl-defmethod eglot-initialization-options ((_server ghostwriter-server))
  ghostwriter-settings)

(dolist (mode '(text-mode markdown-mode org-mode))
  (add-to-list 'eglot-server-programs
               `(,mode . (ghostwriter-server . ,ghostwriter-command))))

(defvar-local ghostwriter--overlay nil)
(defvar-local ghostwriter--suggestion nil "(ID . TEXT) on show.")
(defvar-local ghostwriter--alternatives nil "The (ID . TEXT) to cycle through, and whether they were asked for.")
(defvar-local ghostwriter--fetching nil "Non-nil while alternatives are asked for and not yet answered.")
(defvar-local ghostwriter--told nil "The ids the server heard were shown.")
(defvar-local ghostwriter--timer nil)

(defun ghostwriter--event (id event &optional accepted)
  (jsonrpc-async-request (eglot-current-server) :workspace/executeCommand
                         `(:command "ghostwriter.event"
                           :arguments ,(vconcat (delq nil (list id event accepted))))
                         :success-fn #'ignore :error-fn #'ignore))

(defun ghostwriter-clear ()
  "Hide the suggestion."
  (when ghostwriter--overlay (delete-overlay ghostwriter--overlay))
  (setq ghostwriter--overlay nil ghostwriter--suggestion nil ghostwriter--alternatives nil))

(defun ghostwriter--show (items index asked)
  "Show the INDEXth of ITEMS, (ID . TEXT) each, with \"k/n\" if there are more.
ASKED: they are the alternatives asked for, to cycle through."
  (ghostwriter-clear)
  (let ((ov (make-overlay (point) (point) nil t t))
        (item (nth index items)))
    (overlay-put ov 'after-string
                 (concat (propertize (cdr item) 'face 'ghostwriter-suggestion 'cursor 0)
                         (when (cdr items)
                           (propertize (format "  %d/%d" (1+ index) (length items)) 'face 'ghostwriter-counter))))
    (setq ghostwriter--overlay ov ghostwriter--suggestion item ghostwriter--alternatives (list items index asked))
    (when (and (car item) (not (member (car item) ghostwriter--told)))
      (setq ghostwriter--told (cons (car item) (seq-take ghostwriter--told 63)))  ; the last few are enough
      (ghostwriter--event (car item) "shown"))))

(defun ghostwriter--fetch (invoked answer)
  "Ask for continuations at point and call ANSWER with their (ID . TEXT) list.
INVOKED: asked for, not as you type.  The list is nil if the text or point
has moved on meanwhile, or if the request failed.  Nil if no server."
  (when-let ((server (eglot-current-server)))
    (let ((buffer (current-buffer)) (tick (buffer-chars-modified-tick)) (pos (point)))
      (cl-flet ((reply (items)
                  (when (buffer-live-p buffer)
                    (with-current-buffer buffer
                      (funcall answer (and (= tick (buffer-chars-modified-tick)) (= pos (point)) items))))))
        (jsonrpc-async-request
         server :textDocument/inlineCompletion
         `(,@(eglot--TextDocumentPositionParams) :context (:triggerKind ,(if invoked 1 2)))
         :success-fn
         (lambda (result)
           (reply (mapcar (lambda (item)
                            (let ((args (plist-get (plist-get item :command) :arguments)))
                              (cons (and args (aref args 0)) (plist-get item :insertText))))
                          (plist-get result :items))))
         :error-fn (lambda (_) (reply nil))))
      t)))

(defun ghostwriter-suggest (&optional invoked)
  "Ask for a continuation at point (INVOKED: asked for, not as you type)."
  (interactive (list t))
  (ghostwriter--fetch invoked (lambda (items) (when items (ghostwriter--show items 0 invoked)))))

(defun ghostwriter--cycle (step)
  "Show the alternative STEP places on.
The first time, ask the server for alternatives: the one on show stays first."
  (pcase ghostwriter--alternatives
    ((guard ghostwriter--fetching))
    (`(,items ,index t) (ghostwriter--show items (mod (+ index step) (length items)) t))
    (_ (let ((current ghostwriter--suggestion))
         (setq ghostwriter--fetching
               (ghostwriter--fetch
                t (lambda (items)
                    (setq ghostwriter--fetching nil)
                    (let ((all (append (and current (list current))
                                       (seq-remove (lambda (item) (equal (cdr item) (cdr current))) items))))
                      (when (and all (or items (not current)))
                        (ghostwriter--show all (if current (mod step (length all)) (if (> step 0) 0 (1- (length all))))
                                           t))))))))))

(defun ghostwriter-next ()
  "Show the next alternative to the suggestion."
  (interactive)
  (ghostwriter--cycle 1))

(defun ghostwriter-previous ()
  "Show the previous alternative to the suggestion."
  (interactive)
  (ghostwriter--cycle -1))

;; Declared special before its first use below: byte-compiled, a `let' of an undeclared variable would bind it
;; lexically, the mode's keymap would stay active and TAB without a suggestion would call itself.
(defvar ghostwriter-mode)

(defun ghostwriter-accept ()
  "Insert the suggestion on show, or do what TAB does."
  (interactive)
  (if-let ((suggestion ghostwriter--suggestion))
      (progn (ghostwriter-clear)
             (insert (cdr suggestion))
             (when (car suggestion) (ghostwriter--event (car suggestion) "accepted" (cdr suggestion))))
    (let ((ghostwriter-mode nil))
      (call-interactively (key-binding (kbd "TAB"))))))

(defun ghostwriter-unconditional ()
  "Insert an unconditional sample at point."
  (interactive)
  (let ((answer (jsonrpc-request (eglot-current-server) :workspace/executeCommand
                                 `(:command "ghostwriter.unconditional"
                                   :arguments [,(eglot--path-to-uri (buffer-file-name))]))))
    (insert (plist-get answer :text))))

(defun ghostwriter--after-change (&rest _)
  (ghostwriter-clear)
  (setq ghostwriter--fetching nil)  ; alternatives still to come are for text that has changed
  (when ghostwriter--timer (cancel-timer ghostwriter--timer))
  (setq ghostwriter--timer
        (run-with-idle-timer ghostwriter-idle-delay nil
                             (let ((buffer (current-buffer)))
                               (lambda () (when (buffer-live-p buffer)
                                            (with-current-buffer buffer (ghostwriter-suggest))))))))

(defun ghostwriter--moved ()
  (when (and ghostwriter--overlay (/= (point) (overlay-start ghostwriter--overlay))
             (not (eq this-command 'self-insert-command)))
    (ghostwriter-clear)))

(defvar ghostwriter-mode-map
  (let ((map (make-sparse-keymap)))
    (define-key map (kbd "TAB") #'ghostwriter-accept)
    (define-key map (kbd "M-]") #'ghostwriter-next)
    (define-key map (kbd "M-[") #'ghostwriter-previous)
    map))

;;;###autoload
(define-minor-mode ghostwriter-mode
  "Ghost-text continuations from the ghostwriter server (start it with M-x eglot)."
  :lighter " Ghost" :keymap ghostwriter-mode-map
  (if ghostwriter-mode
      (progn (add-hook 'after-change-functions #'ghostwriter--after-change nil t)
             (add-hook 'post-command-hook #'ghostwriter--moved nil t))
    (remove-hook 'after-change-functions #'ghostwriter--after-change t)
    (remove-hook 'post-command-hook #'ghostwriter--moved t)
    (ghostwriter-clear)))

(provide 'ghostwriter)
;;; ghostwriter.el ends here
