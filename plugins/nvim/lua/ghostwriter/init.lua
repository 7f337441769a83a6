-- ghostwriter for Neovim (0.7 and later): the `assistant lsp` server's continuations as ghost text.
--
-- Neovim before 0.12 has no client side for textDocument/inlineCompletion, so this plugin asks for it
-- itself after a pause in typing (the debounce), shows the first item as virtual text at the cursor,
-- inserts it on the accept key and tells the server what became of it (shown, accepted, partial).
-- The next and previous keys cycle through alternatives: the first press asks the server for them
-- (an invoked request answers up to `alternatives` different continuations), as VS Code does.

local M = {}

local defaults = {
  cmd = { "assistant", "lsp" },   -- how to start the server
  filetypes = { "text", "markdown", "mail", "gitcommit", "tex", "rst", "org" },
  settings = {},                  -- sent as initializationOptions: model, temperature, autoChars, maxChars, stopAt...
  debounce_ms = 250,              -- pause in typing before a suggestion is asked for
  accept_key = "<Tab>",           -- inserts the whole suggestion (otherwise the key does what it always does)
  accept_word_key = "<M-Right>",  -- inserts its next word
  next_key = "<M-]>",             -- shows the next alternative (asking for them first)
  previous_key = "<M-[>",         -- shows the previous one
  highlight = "Comment",
  counter_highlight = "NonText",  -- the "k/n" after an alternative
}

local config = vim.deepcopy(defaults)
local client_id = nil
local timer = nil
local ns = vim.api.nvim_create_namespace("ghostwriter")
-- What is on show: the alternatives at the cursor (buf, row, col), each { text, id, taken, shown }, where `taken` is
-- the start of its text already inserted word by word; `index` is the one shown; `fetched` once the server was asked
-- for alternatives (nothing more to ask for).
local ghost = nil  -- { buf, row, col, items, index, fetched, mark }
local fetching = false  -- alternatives asked for and not yet answered
local own_tick = nil  -- the buffer's changedtick after the plugin inserted a word itself: not the user typing

local function client()
  return client_id and vim.lsp.get_client_by_id(client_id) or nil
end

-- client:request on 0.11 and later, client.request before
local function request(c, method, params, handler, buf)
  if vim.fn.has("nvim-0.11") == 1 then return c:request(method, params, handler, buf) end
  return c.request(method, params, handler, buf)
end

local function event(id, kind, accepted)
  local c = client()
  if c then
    request(c, "workspace/executeCommand",
      { command = "ghostwriter.event", arguments = accepted and { id, kind, accepted } or { id, kind } },
      function() end)
  end
end

function M.clear()
  if ghost then
    pcall(vim.api.nvim_buf_del_extmark, ghost.buf, ns, ghost.mark)
    ghost = nil
  end
end

local function rest(item)
  return item.text:sub(#item.taken + 1)
end

-- Show items[index] at (row, col), with "k/n" after it where there are alternatives; the server hears it was shown.
local function show(buf, row, col, items, index, fetched)
  M.clear()
  local item = items[index]
  local lines = vim.split(rest(item), "\n", { plain = true })
  local chunks = {}
  for i, line in ipairs(lines) do chunks[i] = { { line, config.highlight } } end
  if #items > 1 then table.insert(chunks[#lines], { ("  %d/%d"):format(index, #items), config.counter_highlight }) end
  local opts = { virt_text = chunks[1], hl_mode = "combine" }
  opts.virt_text_pos = vim.fn.has("nvim-0.10") == 1 and "inline" or "overlay"
  if #lines > 1 then opts.virt_lines = vim.list_slice(chunks, 2) end
  local mark = vim.api.nvim_buf_set_extmark(buf, ns, row, col, opts)
  ghost = { buf = buf, row = row, col = col, items = items, index = index, fetched = fetched, mark = mark }
  if item.id and not item.shown then
    item.shown = true
    event(item.id, "shown")
  end
end

-- Ask for continuations at the cursor (trigger 2 is automatic, as you type; 1 invoked: up to `alternatives`) and
-- hand them to `answer(buf, row, col, items)`, or `answer()` if the text or the cursor has moved on meanwhile (they
-- are stale); false if there is no server to ask.
local function fetch(trigger, answer)
  local c = client()
  local inserting = vim.fn.mode() == "i"
  if not c or not inserting and trigger ~= 1 then return false end
  local buf = vim.api.nvim_get_current_buf()
  local win = vim.api.nvim_get_current_win()
  local cursor = vim.api.nvim_win_get_cursor(win)
  local tick = vim.api.nvim_buf_get_changedtick(buf)
  local encoding = c.offset_encoding or "utf-16"
  local params = vim.lsp.util.make_position_params(win, encoding)
  params.context = { triggerKind = trigger or 2 }
  local col = cursor[2]
  local line = vim.api.nvim_get_current_line()
  if not inserting and #line > 0 then
    -- in normal mode the cursor is on a character: continue after it, where `a` would start inserting
    local after = vim.fn.byteidx(line, vim.fn.charidx(line, col) + 1)
    col = after >= 0 and after or #line
    params.position.character = vim.lsp.util.character_offset(buf, cursor[1] - 1, col, encoding)
  end
  request(c, "textDocument/inlineCompletion", params, function(err, result)
    -- a suggestion for text that has changed since, or for another place, is stale
    local now = vim.api.nvim_win_get_cursor(0)
    local stale = vim.api.nvim_get_current_buf() ~= buf or vim.api.nvim_buf_get_changedtick(buf) ~= tick
        or now[1] ~= cursor[1] or now[2] ~= cursor[2]
    if stale then return answer() end
    local items = {}
    for _, item in ipairs(not err and result and result.items or {}) do
      local id = item.command and item.command.arguments and item.command.arguments[1]
      table.insert(items, { text = item.insertText, id = id, taken = "" })
    end
    answer(buf, cursor[1] - 1, col, items)
  end, buf)
  return true
end

-- Ask for a continuation at the cursor and show it; trigger 2 is automatic (as you type), 1 invoked.
function M.suggest(trigger)
  fetch(trigger, function(buf, row, col, items)
    if buf and #items > 0 then show(buf, row, col, items, 1, trigger == 1) end
  end)
end

-- Show the alternative `step` places on (1 next, -1 previous), asking the server for alternatives first where it
-- has not been asked: what is on show stays first, the others follow. True if the key was used.
function M.cycle(step)
  if fetching then return true end  -- the alternatives are on their way
  if ghost and ghost.fetched then
    local g = ghost
    show(g.buf, g.row, g.col, g.items, (g.index - 1 + step) % #g.items + 1, true)
    return true
  end
  local current = ghost and ghost.items[ghost.index]
  fetching = fetch(1, function(buf, row, col, items)
    fetching = false
    if not buf then return end
    local all = { current }
    for _, item in ipairs(items) do
      if not current or item.text ~= rest(current) then table.insert(all, item) end
    end
    if #all > 0 then show(buf, row, col, all, current and (step % #all) + 1 or (step > 0 and 1 or #all), true) end
  end)
  return fetching
end

local function schedule(a)
  if own_tick and a and vim.api.nvim_buf_get_changedtick(a.buf) == own_tick then return end  -- a word taken
  M.clear()
  fetching = false  -- alternatives still to come are for text that has changed: their answer is dropped as stale
  if not timer then timer = vim.loop.new_timer() end
  timer:stop()
  timer:start(config.debounce_ms, 0, vim.schedule_wrap(function() M.suggest(2) end))
end

local function insert(g, text)
  local row, col = g.row, g.col
  local lines = vim.split(text, "\n", { plain = true })
  vim.api.nvim_buf_set_text(g.buf, row, col, row, col, lines)
  local last_row = row + #lines - 1
  local last_col = (#lines == 1 and col or 0) + #lines[#lines]
  vim.api.nvim_win_set_cursor(0, { last_row + 1, last_col })
  return last_row, last_col
end

-- Insert the whole suggestion; true if there was one.
function M.accept()
  if not ghost then return false end
  local g, item = ghost, ghost.items[ghost.index]
  M.clear()
  insert(g, rest(item))
  if item.id then event(item.id, "accepted", item.text) end
  return true
end

-- Insert the suggestion's next word (and the space before it); the rest stays on show, without the other
-- alternatives, which no longer fit the text.
function M.accept_word()
  if not ghost then return false end
  local g, item = ghost, ghost.items[ghost.index]
  local left = rest(item)
  local word = left:match("^%s*%S+") or left
  M.clear()
  local row, col = insert(g, word)
  own_tick = vim.api.nvim_buf_get_changedtick(g.buf)
  item.taken = item.taken .. word
  if item.id then event(item.id, item.taken == item.text and "accepted" or "partial", item.taken) end
  if item.taken ~= item.text then show(g.buf, row, col, { item }, 1, false) end
  return true
end

-- Whether the server is up and initialized.
function M.ready()
  local c = client()
  return c ~= nil and c.server_capabilities ~= nil
end

-- The text on show, for tests and statuslines.
function M.visible()
  return ghost and rest(ghost.items[ghost.index]) or ""
end

-- An unconditional sample from the server, inserted at the cursor.
function M.unconditional()
  local c = client()
  if not c then return vim.notify("ghostwriter: the server is not running", vim.log.levels.ERROR) end
  local buf = vim.api.nvim_get_current_buf()
  request(c, "workspace/executeCommand",
    { command = "ghostwriter.unconditional", arguments = { vim.uri_from_bufnr(buf) } },
    function(err, result)
      if err then return vim.notify("ghostwriter: " .. err.message, vim.log.levels.ERROR) end
      M.clear()  -- a suggestion for the text before the sample no longer fits
      local cursor = vim.api.nvim_win_get_cursor(0)
      local lines = vim.split(result.text, "\n", { plain = true })
      vim.api.nvim_buf_set_text(buf, cursor[1] - 1, cursor[2], cursor[1] - 1, cursor[2], lines)
    end, buf)
end

local function attach(buf)
  if not vim.tbl_contains(config.filetypes, vim.bo[buf].filetype) then return end
  local lsp_config = {
    name = "ghostwriter", cmd = config.cmd, init_options = config.settings, root_dir = vim.loop.cwd(),
  }
  if vim.lsp.start then  -- 0.8 and later: starts the server once and attaches the buffer
    client_id = vim.lsp.start(lsp_config, { bufnr = buf }) or client_id
  else
    client_id = client_id or vim.lsp.start_client(lsp_config)
    vim.lsp.buf_attach_client(buf, client_id)
  end
end

local function map(key, fn)
  if not key or key == "" then return end
  vim.keymap.set("i", key, function()
    if not fn() then
      vim.api.nvim_feedkeys(vim.api.nvim_replace_termcodes(key, true, false, true), "n", false)
    end
  end, { desc = "ghostwriter" })
end

function M.setup(opts)
  config = vim.tbl_deep_extend("force", vim.deepcopy(defaults), opts or {})
  local group = vim.api.nvim_create_augroup("ghostwriter", { clear = true })
  vim.api.nvim_create_autocmd("FileType", { group = group, callback = function(a) attach(a.buf) end })
  vim.api.nvim_create_autocmd("TextChangedI", { group = group, callback = schedule })
  vim.api.nvim_create_autocmd("CursorMovedI", { group = group, callback = function()
    local cursor = vim.api.nvim_win_get_cursor(0)
    if ghost and (cursor[1] - 1 ~= ghost.row or cursor[2] ~= ghost.col) then M.clear() end
  end })
  vim.api.nvim_create_autocmd({ "InsertLeave", "BufLeave" }, { group = group, callback = M.clear })
  map(config.accept_key, M.accept)
  map(config.accept_word_key, M.accept_word)
  map(config.next_key, function() return M.cycle(1) end)
  map(config.previous_key, function() return M.cycle(-1) end)
  for _, buf in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_is_loaded(buf) then attach(buf) end
  end
end

return M
