# Cargo
/target/
# cfn
rpdk.log*
/@HYPHENATED@.zip
