{
  "typeName": "@TYPE_NAME@",
  "description": "@TYPE_NAME@, as `cfn init` scaffolded it: each resource is a record of its properties, kept in SSM Parameter Store. Describe your resource type here.",
  "properties": {
    "Id": {
      "description": "The resource's identifier, made by the create handler from the stack, the logical ID and the request.",
      "type": "string",
      "pattern": "^[A-Za-z0-9-]{1,128}$"
    },
    "Name": {
      "description": "A name for the resource.",
      "type": "string",
      "minLength": 1,
      "maxLength": 128
    },
    "Value": {
      "description": "A value the resource keeps.",
      "type": "string",
      "maxLength": 1024
    }
  },
  "additionalProperties": false,
  "required": [
    "Name"
  ],
  "readOnlyProperties": [
    "/properties/Id"
  ],
  "primaryIdentifier": [
    "/properties/Id"
  ],
  "tagging": {
    "taggable": false,
    "tagOnCreate": false,
    "tagUpdatable": false,
    "cloudFormationSystemTags": false
  },
  "handlers": {
    "create": {
      "permissions": [
        "ssm:PutParameter"
      ]
    },
    "read": {
      "permissions": [
        "ssm:GetParameter"
      ]
    },
    "update": {
      "permissions": [
        "ssm:GetParameter",
        "ssm:PutParameter"
      ]
    },
    "delete": {
      "permissions": [
        "ssm:DeleteParameter"
      ]
    },
    "list": {
      "permissions": [
        "ssm:GetParametersByPath"
      ]
    }
  }
}
