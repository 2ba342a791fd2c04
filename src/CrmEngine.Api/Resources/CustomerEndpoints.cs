using CrmEngine.Abstractions.Model;
using CrmEngine.Abstractions.Store;
using CrmEngine.Security;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace CrmEngine.Api.Resources;

/// <summary><c>/api/customers</c>: the customer card, and the orders of one customer.</summary>
internal sealed class CustomerEndpoints : IApiEndpointModule
{
    private readonly EntityResource<Customer> _customers = new("customers", "customer", "Customer", "Customers", s => s.Customers);

    public void Map(IEndpointRouteBuilder api, IEndpointRouteBuilder root)
    {
        var group = _customers.Map(api);
        group.MapGet("/{id}/orders", OrdersAsync)
            .RequireAuthorization(ApiPolicies.Read)
            .WithName("ListCustomerOrders")
            .WithSummary("The orders of one customer in id order, paged with limit and after.")
            .Produces<ResourcePage<Order>>()
            .ProducesProblem(StatusCodes.Status404NotFound);
    }

    private static async Task<IResult> OrdersAsync(HttpContext context, string id)
    {
        if (!Paging.TryRead(context.Request, [], [], out var page, out var problem))
        {
            return problem!;
        }

        var store = context.CrmStore();
        var (customer, missing) = await CustomerLookup.LoadAsync(context, store, id);
        if (customer is null)
        {
            return missing!;
        }

        // The customer's orders the caller may read (an order can be owned by someone else than its customer), without the
        // order fields hidden from the caller, as GET /api/orders answers them.
        var access = await context.CrmAccessAsync();
        var visible = access.Filter(EntityNames.Order);
        var orders = await VisibleRecords.FindAsync(store.Orders, visible, o => o.Owner, IndexedField.CustomerId, customer.Id, page.Limit + 1, page.After,
            context.RequestAborted);
        var mask = access.Fields(EntityNames.Order);
        return Paging.Respond(context, orders, page.Limit, o => o.Id, o => RecordAccess.Shape(mask, o));
    }
}

/// <summary><c>/api/orders</c> and <c>/api/products</c> (search products by <c>sku</c>, <c>name</c> or <c>externalId</c>).</summary>
internal sealed class OrderEndpoints : IApiEndpointModule
{
    private readonly EntityResource<Order> _orders = new("orders", "order", "Order", "Orders", s => s.Orders);
    private readonly EntityResource<Product> _products = new("products", "product", "Product", "Products", s => s.Products);

    public void Map(IEndpointRouteBuilder api, IEndpointRouteBuilder root)
    {
        _orders.Map(api);
        _products.Map(api);
    }
}
