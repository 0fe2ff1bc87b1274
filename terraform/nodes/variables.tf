variable "server_name" {
  description = "Name of the nodes; node i is <server_name>-<i>."
  type        = string
  default     = "dtask-node"
}

variable "node_count" {
  description = "The number of executor nodes."
  type        = number
  default     = 3
}

variable "instance_type" {
  description = "EC2 instance type of the nodes."
  type        = string
  default     = "t3.micro"
}

variable "architecture" {
  description = "x86_64 or arm64; must match instance_type and the binary at dtask_binary_url."
  type        = string
  default     = "x86_64"
}

variable "dtask_binary_url" {
  description = "Where nodes download the dtask binary (make publish builds it; upload it to S3 or HTTPS)."
  type        = string
}

variable "dtask_binary_sha512" {
  description = "Hex SHA-512 of that binary (artifacts/<rid>/dtask.sha512)."
  type        = string
}

variable "node_labels" {
  description = "Labels of every executor, matched by tasks' nodeSelector."
  type        = map(string)
  default     = {}
}

variable "node_labels_by_node" {
  description = "Labels of single nodes by node name (<server_name>-<i>), over node_labels; only with labels_from_consul."
  type        = map(map(string))
  default     = {}
}

variable "labels_from_consul" {
  description = "Labels written by Terraform to <prefix>node-labels/<node>, which a node's token can only read (executor --labels-from-consul); false: each node declares node_labels itself."
  type        = bool
  default     = true
}

variable "slack_webhook" {
  description = "Slack incoming-webhook URL (empty: no Slack messages)."
  type        = string
  default     = ""
  sensitive   = true
}

variable "datadog_api_key" {
  description = "DataDog API key (empty: no DataDog HTTP series)."
  type        = string
  default     = ""
  sensitive   = true
}

variable "consul_api_address" {
  description = "host:port Terraform uses to reach Consul, e.g. localhost:8501 through a tunnel (empty: the load balancer)."
  type        = string
  default     = ""
}

variable "key_name" {
  description = "EC2 key pair for SSH as user core (null: no key)."
  type        = string
  default     = null
}

variable "admin_cidr_blocks" {
  description = "Networks allowed to SSH to the nodes (empty: none)."
  type        = list(string)
  default     = []
}
