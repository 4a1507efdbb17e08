{
    "Name": "first",
    "Value": "updated"
}
