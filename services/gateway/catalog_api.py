"""The catalog at the edge: products with prices and stock (the product picker's source) and
the state of imports from 1C."""
from __future__ import annotations

from crmhub.contracts import catalog as schemas
from crmhub.services.gateway.deals_api import query_args
from crmhub.services.gateway.http import http
from crmhub.services.gateway.openapi import operation


def product_query(request) -> dict:
    query = query_args(request, schemas.ProductQuerySchema)
    if "ids" in query:
        query["ids"] = [part.strip() for part in query["ids"].split(",") if part.strip()]
    return query


class CatalogApi:
    """Mixed into GatewayService (which provides ``catalog`` and ``_principal``)."""

    @http("GET", "/api/v1/products")
    @operation(summary="Products with price and stock: by part of the name or by article",
               tags=["catalog"], query=schemas.ProductQuerySchema,
               response=schemas.ProductPageSchema, permission="catalog:read",
               description="`q` matches the article exactly or by its beginning, or any part of "
                           "the name; `ids=a,b` fetches given offers; `in_stock=true` keeps "
                           "what some warehouse holds.")
    def list_products(self, request):
        self._principal(request, "catalog:read")
        return self.catalog.search_products(product_query(request))

    @http("GET", "/api/v1/catalog/imports")
    @operation(summary="Recent imports from 1C, newest first", tags=["catalog"],
               response=schemas.ImportJobListSchema, permission="catalog:imports")
    def list_imports(self, request):
        self._principal(request, "catalog:imports")
        return self.catalog.list_imports()

    @http("GET", "/api/v1/catalog/imports/<string:job_id>")
    @operation(summary="One import from 1C: its state, counts, or why it failed",
               tags=["catalog"], response=schemas.ImportJobSchema, permission="catalog:imports")
    def get_import(self, request, job_id):
        self._principal(request, "catalog:imports")
        return self.catalog.get_import(job_id)
