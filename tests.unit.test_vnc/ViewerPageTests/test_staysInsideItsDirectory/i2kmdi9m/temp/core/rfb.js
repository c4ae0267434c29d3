export default class RFB {}
