terraform {
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.0"
    }
    consul = {
      source  = "hashicorp/consul"
      version = "~> 2.21"
    }
    ct = {
      source  = "poseidon/ct"
      version = "~> 0.13"
    }
  }
}
