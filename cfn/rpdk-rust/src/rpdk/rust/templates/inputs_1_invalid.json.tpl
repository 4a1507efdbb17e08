{
    "Name": "",
    "Value": "a name must not be empty"
}
