# Consul ACL policy of a dtask administrator: everything the operator may do, plus the labels of nodes
# (dtask/node-labels/<node>, read by executors started with --labels-from-consul). Keys are under the default
# prefix dtask/; with --prefix, replace "dtask/" in every rule.
key_prefix "dtask/" {
  policy = "write"
}
session_prefix "" {
  policy = "write"
}
