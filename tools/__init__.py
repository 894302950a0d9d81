"""The tools agents call, with Claude Code's names and semantics (see `registry` for the list).

Each tool is one module exporting a `ToolSpec`; `sandbox` keeps paths inside the workspace, `netguard`
keeps WebFetch off private networks, and `permissions` decides whether a call may run at all.
"""
