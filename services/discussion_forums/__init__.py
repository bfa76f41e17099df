"""DiscussionForums: the weekly `.mongo` forum dumps, one document collection per course forum."""
