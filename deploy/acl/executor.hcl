# Consul ACL policy of the dtask executor on ONE node: render it once per node with ${node} replaced by the
# node's name (its --node, by default the host name) and ${consul_node} by the Consul node its sessions are
# created on (its --session-node; without one, the node name of the Consul agent it talks to), e.g.
#   sed -e 's/[$]{node}/node-1/g' -e 's/[$]{consul_node}/node-1/g' executor.hcl > executor-node-1.hcl
# (terraform/modules/nodes renders it with templatefile()). Keys are under the default prefix dtask/; with
# --prefix, replace "dtask/" in every rule.
#
# An executor cannot change what runs: task specs are read-only to it.

# Task specs: read only.
key_prefix "dtask/tasks/" {
  policy = "read"
}

# Live executors: read every registration (slot ranking), write only this node's own.
key_prefix "dtask/nodes/" {
  policy = "read"
}
key "dtask/nodes/${node}" {
  policy = "write"
}

# Labels an administrator assigns to this node (executor --labels-from-consul): read only.
key "dtask/node-labels/${node}" {
  policy = "read"
}

# Run state: locks, run records, history.
key_prefix "dtask/state/" {
  policy = "write"
}

# Control requests: an executor deletes the triggers it runs, writes the stop requests of Replace and the
# control/.watch anchor.
key_prefix "dtask/control/" {
  policy = "write"
}

# Sessions (registration and run locks): write on this executor's own session node only, so it cannot renew or
# destroy the sessions of another node. Give every executor a node of its own: its --session-node (a catalog node,
# e.g. registered by terraform/modules/nodes), or a local Consul agent of its own.
session "${consul_node}" {
  policy = "write"
}
