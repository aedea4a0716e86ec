"""Layer 3: the database (tortoise models, migrations), attachment blobs and case references."""
