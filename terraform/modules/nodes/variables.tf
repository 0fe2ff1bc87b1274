variable "name" {
  description = "Name prefix of the nodes (the original's server name); node i is <name>-<i>."
  type        = string
}

variable "node_count" {
  description = "Number of executor nodes."
  type        = number
  default     = 3
}

variable "instance_type" {
  description = "EC2 instance type of the nodes."
  type        = string
  default     = "t3.micro"
}

variable "architecture" {
  description = "CPU architecture of the instance type: x86_64 or arm64 (picks the AMI and the binary)."
  type        = string
  default     = "x86_64"

  validation {
    condition     = contains(["x86_64", "arm64"], var.architecture)
    error_message = "architecture must be x86_64 or arm64."
  }
}

variable "vpc_id" {
  description = "VPC the nodes run in."
  type        = string
}

variable "private_subnet_ids" {
  description = "Private subnets to spread the nodes over."
  type        = list(string)
}

variable "consul_https_address" {
  description = "Consul's HTTPS API as host:port (the internal load balancer)."
  type        = string
}

variable "consul_ca_cert_pem" {
  description = "PEM of the CA that signed the Consul servers' certificates."
  type        = string
}

variable "kv_prefix" {
  description = "Consul KV prefix of dtask."
  type        = string
  default     = "dtask/"
}

variable "dtask_binary_url" {
  description = "URL the nodes download the dtask binary from (https:// or s3://)."
  type        = string
}

variable "dtask_binary_sha512" {
  description = "Hex SHA-512 of the dtask binary (make publish writes artifacts/<rid>/dtask.sha512)."
  type        = string
}

variable "node_labels" {
  description = "Labels of every executor (a task's nodeSelector matches them)."
  type        = map(string)
  default     = {}
}

variable "node_labels_by_node" {
  description = "Labels of single nodes by node name (<name>-<i>), over node_labels; only with labels_from_consul."
  type        = map(map(string))
  default     = {}
}

variable "labels_from_consul" {
  description = "Write each node's labels to <kv_prefix>node-labels/<node>, which its token can only read, and start the executors with --labels-from-consul (false: each node declares node_labels itself with --labels)."
  type        = bool
  default     = true
}

variable "slack_webhook" {
  description = "Slack incoming-webhook URL for task notifications (empty: none)."
  type        = string
  default     = ""
  sensitive   = true
}

variable "datadog_api_key" {
  description = "DataDog API key for the HTTP series API (empty: none)."
  type        = string
  default     = ""
  sensitive   = true
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

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
