variable "name" {
  description = "Name prefix of the cluster's resources; also the cloud auto-join tag value."
  type        = string
}

variable "vpc_id" {
  description = "VPC the servers run in."
  type        = string
}

variable "vpc_cidr" {
  description = "CIDR block of the VPC: the only network Consul's HTTPS API is open to."
  type        = string
}

variable "private_subnet_ids" {
  description = "Private subnets, one per availability zone; server i goes into subnet i modulo their count."
  type        = list(string)
}

variable "server_count" {
  description = "Number of Consul servers (3 tolerates the loss of one)."
  type        = number
  default     = 3
}

variable "instance_type" {
  description = "EC2 instance type of the servers."
  type        = string
  default     = "t3.small"
}

variable "datacenter" {
  description = "Consul datacenter name."
  type        = string
  default     = "dc1"
}

variable "consul_image" {
  description = "Container image of the Consul agent run on the Flatcar servers."
  type        = string
  default     = "hashicorp/consul:1.20"
}

variable "data_volume_size" {
  description = "Size in GiB of each server's persistent data volume."
  type        = number
  default     = 20
}

variable "key_name" {
  description = "EC2 key pair for SSH as user core (null: no key)."
  type        = string
  default     = null
}

variable "admin_cidr_blocks" {
  description = "Networks allowed to SSH to the servers (empty: none)."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
