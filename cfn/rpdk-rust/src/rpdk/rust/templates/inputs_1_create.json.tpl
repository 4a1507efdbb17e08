{
    "Name": "first",
    "Value": "created"
}
