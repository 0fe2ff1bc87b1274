# Consul ACL policy of a team that owns ONE namespace: render it once per namespace with ${namespace} replaced,
# e.g.  sed 's/[$]{namespace}/team-a/g' tenant.hcl > tenant-team-a.hcl
# and give the team's token one such policy per namespace it owns. Keys are under the default prefix dtask/;
# with --prefix, replace "dtask/" in every rule.
#
# The token can apply, delete, suspend, resume, trigger and read the tasks of its namespace, and nothing else:
# `dtask get tasks --all-namespaces` lists only what it may read; any command naming another namespace is refused
# (exit 77, the refused key in the message).

# Task specs of the namespace: apply, delete, suspend, resume.
key_prefix "dtask/tasks/${namespace}/" {
  policy = "write"
}

# Run records and history of the namespace: read only (executors write them).
key_prefix "dtask/state/${namespace}/" {
  policy = "read"
}

# Why the operator could not apply a manifest of the namespace (`dtask describe`, `dtask get tasks`).
key_prefix "dtask/problems/${namespace}/" {
  policy = "read"
}

# Triggers and stop requests of the namespace.
key_prefix "dtask/control/${namespace}/" {
  policy = "write"
}

# Which nodes are live (`dtask get nodes`, the NODE column), and who holds a run's lock (`dtask describe`).
key_prefix "dtask/nodes/" {
  policy = "read"
}
session_prefix "" {
  policy = "read"
}
