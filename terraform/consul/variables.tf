variable "consul_server_count" {
  description = "Number of Consul servers, spread over three availability zones."
  type        = number
  default     = 3
}

variable "consul_instance_type" {
  description = "EC2 instance type of the Consul servers."
  type        = string
  default     = "t3.small"
}

variable "consul_data_volume_size" {
  description = "Size in GiB of each Consul server's persistent data volume."
  type        = number
  default     = 20
}

variable "single_nat_gateway" {
  description = "One NAT gateway for the whole VPC instead of one per availability zone."
  type        = bool
  default     = false
}

variable "key_name" {
  description = "EC2 key pair for SSH as user core (null: no key)."
  type        = string
  default     = null
}

variable "admin_cidr_blocks" {
  description = "Networks allowed to SSH to the instances (empty: none)."
  type        = list(string)
  default     = []
}
