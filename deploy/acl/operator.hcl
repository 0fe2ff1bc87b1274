# Consul ACL policy of the dtask operator (admin.hcl is for people running the CLI). Keys are under the
# default prefix dtask/; with --prefix, replace "dtask/" in every rule. ${consul_node} is the Consul node the
# directory source's leader-lock session is created on: its --session-node, or else the node name of the Consul
# agent it talks to, e.g.  sed 's/[$]{consul_node}/operator/g' operator.hcl > operator-rendered.hcl

# Reads everything dtask keeps (run records become status).
key_prefix "dtask/" {
  policy = "read"
}

# Writes task specs and the problems of its sources.
key_prefix "dtask/tasks/" {
  policy = "write"
}
key_prefix "dtask/problems/" {
  policy = "write"
}

# Directory source: replicas elect a leader with a lock on this key (the Kubernetes source uses a Lease and
# needs neither this rule nor the session rule).
key "dtask/leader/operator/dir" {
  policy = "write"
}
session "${consul_node}" {
  policy = "write"
}
